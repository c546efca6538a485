from waiting_room.cli import main

raise SystemExit(main())
