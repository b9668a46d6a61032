"""The one inference path every protocol shares: admission against the queue bound,
decode and preprocess (the card's, shared with training), the dynamic batcher, the
onnxruntime session and its execution providers."""
