"""The gem5 host: the orchestrator (plan, run, orchestrate, cli; plain Python with
percpu's dependencies) and the gem5-side system builder (system.py, which runs inside
gem5.opt and imports only gem5). Keep this file free of imports: system.py's package
is loaded by gem5's interpreter too."""
