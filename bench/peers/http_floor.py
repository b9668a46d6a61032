"""The HTTP floor: a FastAPI endpoint that receives the same multipart upload as the
predict endpoint and answers a small JSON body without decoding the image.

What it measures is the cost of uvicorn + Starlette + python-multipart on this machine,
the part of every request no model server on this stack can avoid.

    uvicorn bench.peers.http_floor:app --host 127.0.0.1 --port 8100 --loop uvloop --http httptools
"""

from __future__ import annotations

from fastapi import FastAPI, File, UploadFile

app = FastAPI(title="HTTP floor")


@app.post("/upload")
async def upload(image: UploadFile = File(...)) -> dict[str, int]:
    data = await image.read()
    return {"bytes": len(data)}


@app.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}
