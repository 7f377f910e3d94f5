"""What sits beside the model: benchmarks, step timing, op accounting, synthetic checkpoints,
shapes, evaluation, progress display and the wording of reports.
"""
