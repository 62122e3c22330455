"""The paper's evaluation reproduced on fsd's real components: `python -m loadtests.paper_eval` (docs/evaluation.md)."""
