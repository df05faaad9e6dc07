"""Fine-tuning: schemes as data schedules (schemes, sampler), one training loop (loop),
checkpoints (checkpoint), evaluation (evaluate), and the `slufit train` command (cli)."""
