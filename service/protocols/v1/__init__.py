"""The V1 image API: multipart or raw-image uploads in, JSON (or a PNG heatmap) out."""
