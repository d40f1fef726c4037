š/
WarmupCosineLR *linear0¬9š™™™™™¹?A{®Gáz„?