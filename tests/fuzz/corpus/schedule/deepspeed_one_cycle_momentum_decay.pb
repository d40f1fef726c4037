šN
OneCycleJ{®Gáz„?`h€’333333ë?š™™™™™é?šffffffî?¡ü©ñÒMbP?Êmomentum