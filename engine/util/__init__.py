"""Small standard-library helpers shared by every subpackage."""
