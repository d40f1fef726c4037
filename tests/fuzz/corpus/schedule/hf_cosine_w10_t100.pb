z
cosine
d