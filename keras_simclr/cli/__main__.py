"""`python -m keras_simclr.cli`."""

import sys

from keras_simclr.cli import main

sys.exit(main())
