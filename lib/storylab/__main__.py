from storylab.cli import main

raise SystemExit(main())
