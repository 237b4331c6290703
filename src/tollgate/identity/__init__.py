"""Identity: the Auth0 integration. At every login, a post-login Action calls one endpoint
that provisions the customer (the user, the organization, or both), subscribes a customer
it created to an initial plan, and counts the user as a monthly active user, refusing a new
one past the plan's limit. Above usage: it calls the services of every domain below."""
