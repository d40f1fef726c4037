z2
cosine_warmup_with_min_lr
<Bü©ñÒMbP?Qš™™™™™¹?