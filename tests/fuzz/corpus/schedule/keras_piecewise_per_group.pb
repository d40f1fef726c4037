‚O
PiecewiseConstantDecay2dè:0š™™™™™¹?{®Gáz„?ü©ñÒMbP?š™™™™™É?{®Gáz”?ü©ñÒMb`?