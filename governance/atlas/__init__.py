"""Apache Atlas: the v2 REST client, our typedefs, and the entities that record a governed deployment."""
