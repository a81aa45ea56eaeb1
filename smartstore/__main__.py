from smartstore.cli import main

raise SystemExit(main())
