z4
warmup_stable_decay
X2`jcosinerlinearyš™™™™™¹?