ZF
Dstep < 10 ? (step + 1) / 10 : 0.5 * (1 + cos(pi * (step - 10) / 90))