from git_prov.cli import main

main()
