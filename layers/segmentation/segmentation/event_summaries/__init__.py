"""The per-user event summaries as stored: their form and growth (stored.py), and the bound on
their size (budget.py). Below both storage, which writes them, and the engine, which reads them."""
