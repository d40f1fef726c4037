š&
WarmupDecayLRü©ñÒMbP? 
*linear0È