import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/distworld.py for spawned ranks too
