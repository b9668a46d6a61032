"""The protocol adapters. Each parses its own wire format into images or tensors, calls the
shared inference path (``service.inference``) and encodes its own answer: ``v1`` is the
image API (predict, explain, models, reload), ``v2`` the Open Inference Protocol."""
