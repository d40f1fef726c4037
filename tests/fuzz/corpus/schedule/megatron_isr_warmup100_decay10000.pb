¢.
inverse-square-roota2U0*©C?Täqs*Ù>(d0N