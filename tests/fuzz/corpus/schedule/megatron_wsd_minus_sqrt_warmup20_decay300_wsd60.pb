¢"
WSDñhãˆµøä>(0¬8<B
minus_sqrt