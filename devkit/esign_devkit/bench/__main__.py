import sys

from esign_devkit.bench.run import main

sys.exit(main(sys.argv[1:]))
