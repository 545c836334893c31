import sys

from stream_tagger.cli.main import main

sys.exit(main())
