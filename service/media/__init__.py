"""Image bytes -> pixels (decode.py, with budgets) and the photo's hashes (hashes.py), and the
parts of a photo crop matching looks at (borders.py, overlays.py, crops.py). Nothing here
imports grpc or the store."""
