ŠF
exponential_decayš™™™™™É?{®Gáz”?"{®Gáz„?ü©ñÒMbP?8@Iffffffæ?P