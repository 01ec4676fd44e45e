from openimds.cli.main import main

main()
