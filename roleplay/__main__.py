from roleplay.cli.main import main

raise SystemExit(main())
