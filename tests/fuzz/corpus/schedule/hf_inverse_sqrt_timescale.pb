z
inverse_sqrt
82