"""Summarise a CSV file: row count and the mean of every numeric column."""
import sys

import pandas as pd


def main(path: str) -> None:
    frame = pd.read_csv(path)
    print(f"{len(frame)} rows")
    print(frame.mean(numeric_only=True).to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/sample.csv")
