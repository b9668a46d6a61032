"""Hypothesis strategies shared by the hostile property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.helpers.multipart import multipart

# (field name, filename, content type, data) parts for tests.hostile.generate.multipart,
# with the awkward names and values a client can send.
multipart_parts = st.lists(
    st.tuples(
        st.sampled_from(["image", "file", "", 'im"age', "image\r\n"]),
        st.none() | st.sampled_from(["a.png", "", "x\r\ny"]),
        st.none() | st.sampled_from(["image/png", "text/plain", ""]),
        st.binary(max_size=64),
    ),
    max_size=4,
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    """A multipart body of such parts, whole or cut anywhere and followed by junk."""
    body = multipart(draw(multipart_parts))
    cut = draw(st.none() | st.integers(0, 400))
    return body if cut is None else body[:cut] + draw(st.binary(max_size=32))
