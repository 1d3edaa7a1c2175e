ALTER TABLE properties RESET (fillfactor);
