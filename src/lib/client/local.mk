# client: the witch client library (see include/witch/client.h)
