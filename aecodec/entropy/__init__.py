"""Entropy model (discrete contexts, integer tables) and the constriction coder."""
from .coder import PayloadError, decode_stage, encode_stage
from .context import NUM_CONTEXTS, context
from .tables import (TABLE_TOTAL, TableError, count_indices, count_zeros, min_bits_per_position,
                     min_bits_with_zeros, quantize_counts, quantize_zero_counts, validate_tables,
                     validate_zero_tables)

__all__ = ["PayloadError", "decode_stage", "encode_stage", "NUM_CONTEXTS", "context",
           "TABLE_TOTAL", "TableError", "count_indices", "min_bits_per_position", "quantize_counts",
           "validate_tables", "count_zeros", "min_bits_with_zeros", "quantize_zero_counts",
           "validate_zero_tables"]
