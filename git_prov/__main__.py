from git_prov.entry import main

main()
