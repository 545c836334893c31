"""The classifier's quality branch on native-resolution fragments (issue 18): nets, training, ladder check."""
