from cstrack.cli.main import main

raise SystemExit(main())
