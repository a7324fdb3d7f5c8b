def test_liveliness_and_readiness(client):
    assert client.get("/health/liveliness").json == {"status": "healthy"}
    response = client.get("/health/readiness")
    assert response.status_code == 200 and response.json["db"] == "connected"
