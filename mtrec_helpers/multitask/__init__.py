"""Multi-task finetuning: task heads on a pretrained encoder, and how their losses are weighted."""
