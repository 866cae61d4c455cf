"""K-means distillation of the multi-task teacher into small, fast students (notebook 05)."""
