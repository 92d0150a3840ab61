"""The four government source systems as seeded, in-process HTTP simulators (for demo and tests).

World (world.py) generates one county across all systems; SimulatorServer (server.py) serves one
system of it under the contract in docs/contracts/source-systems.md; FaultConfig (faults.py)
switches fault injection; `python -m market_access.simulators serve` runs all four.
"""
