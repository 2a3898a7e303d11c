from pktpath.cli.main import main

main()
