"""Simulated trading sessions that exercise the risk components end to end.

:func:`simulate_session` -- seeded, reproducible, any volume; :func:`scripted_scenario` -- a
small session whose every event is documented, for end-to-end tests and hand-computed gold.
"""

from risk_runtime.simulation.scenarios import SCENARIO_START, scripted_scenario
from risk_runtime.simulation.session import DEFAULT_START, SimulationSummary, simulate_session

__all__ = ["DEFAULT_START", "SCENARIO_START", "SimulationSummary", "scripted_scenario", "simulate_session"]
