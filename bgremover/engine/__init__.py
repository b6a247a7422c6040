"""The background inference engine: U²-Net segmentation, edge refinement, alpha matting,
compositing and encoding. Plain Python on numpy arrays and PIL images; it imports nothing
from Django, so the web app, the CLI and the benchmarks all call the same code."""
