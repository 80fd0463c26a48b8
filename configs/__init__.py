"""Run configs, legends and parameter tables of lucr (package data, read through ``CONFIG_DIR``)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
