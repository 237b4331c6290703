"""What a plan or add-on costs: pricing math over the catalog's charges, exact to the minor unit."""
