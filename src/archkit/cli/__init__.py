"""Command-line interface (`archkit ...`); flags map onto the config dataclasses, nothing else."""
