from openimds.cli import main

main()
