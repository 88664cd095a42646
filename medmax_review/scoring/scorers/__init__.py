"""Pre-scoring checks. Each module holds one pure scorer returning a ScoreResult."""
